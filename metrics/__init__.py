"""Evaluation metrics: a registry of named metrics (metric_main) and their implementations.

Importing this package loads nothing heavy; scipy, POT and gudhi are imported inside the functions that
need them. Start at metric_main.py for the list of metrics.
"""
