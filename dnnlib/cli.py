"""Command-line conventions shared by the scripts: every user error is one line on stderr,
``Error: <what was wrong and what is accepted>``, with exit status 2, and nothing is written."""

from __future__ import annotations

import argparse
import math
import sys

import click


class UserError(click.ClickException):
    """A bad option value or input file. The message names the option or file and what is expected."""

    exit_code = 2


class CommaSeparatedList(click.ParamType):
    """'a,b,c' → ['a', 'b', 'c']; 'none' or '' → []."""

    name = 'list'

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        if value is None or value.strip().lower() in ('', 'none'):
            return []
        items = [v.strip() for v in value.split(',')]
        if any(not v for v in items):
            self.fail(f'{value!r} has an empty item; expected a comma-separated list', param, ctx)
        return items


class FiniteFloat(click.FloatRange):
    """click.FloatRange that also refuses nan and ±inf (FloatRange's bound checks compare False with nan, so
    it lets nan through, and an unbounded side accepts inf). Every float option of the scripts uses it."""

    name = 'finite float'

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f'{value!r} is not a finite number', param, ctx)
        return super().convert(number, param, ctx)


class _OneLineMain:
    """Usage errors print as one line (``Error: ...``, exit status 2) instead of usage text, a "Try --help"
    line and the error; ``-h`` is accepted beside ``--help``."""

    def __init__(self, *args, **kwargs):
        settings = dict(kwargs.pop('context_settings', None) or {})
        settings.setdefault('help_option_names', ['-h', '--help'])
        super().__init__(*args, context_settings=settings, **kwargs)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            print(f'Error: {e.format_message()}', file=sys.stderr, flush=True)
            return self._finish(2, standalone_mode)
        except click.ClickException as e:
            e.show()
            return self._finish(e.exit_code, standalone_mode)
        except click.Abort:
            print('Aborted!', file=sys.stderr, flush=True)
            return self._finish(1, standalone_mode)
        if isinstance(rv, int):          # --help and ctx.exit(n) return their status in non-standalone mode
            return self._finish(rv, standalone_mode)
        return self._finish(0, standalone_mode) if standalone_mode else rv

    @staticmethod
    def _finish(code: int, standalone_mode: bool):
        if standalone_mode:
            sys.exit(code)
        return code


class OneLineErrors(_OneLineMain, click.Command):
    """A click command with one-line usage errors and ``-h``."""


class OneLineGroup(_OneLineMain, click.Group):
    """A click group with one-line usage errors and ``-h`` (its subcommands inherit ``-h``)."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse with the same convention: a usage error is one line, ``Error: ...``, exit status 2."""

    def error(self, message):
        print(f'Error: {message}', file=sys.stderr, flush=True)
        sys.exit(2)
