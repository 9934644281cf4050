import os
import sys

# ``python -m celery_chain_lint`` puts the working directory first on sys.path: run from the
# analysed project, its own modules (a ``click.py``, a ``json.py``) would shadow the linter's
# imports and run. The linter never imports from there (as ``python -P``).
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from celery_chain_lint.cli import console_main  # noqa: E402

console_main()
