"""Mode-coverage benchmarks (BENCHMARKS.md): every objective of the `--loss` registry trained with the
same networks, budget and seeds on 2-D mixtures, stacked MNIST and MNIST, scored by modes captured,
high-quality samples, KL to the uniform mode distribution and digit balance, with curves over training.

    python -m stylegan2_softgan.bench --suite=2d,stacked --protocol=quick --seeds=5 \\
        --data=mnist.npz --outdir=docs/benchmarks

Modules: data2d (2-D data sets), stacked_mnist (stacked digits and the classifier), scoring (the
scores), protocols (networks, budgets, objectives), runner (one run), report (table and figures),
__main__ (the command).
"""
