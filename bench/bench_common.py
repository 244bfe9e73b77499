"""Shared start-up of the bench/ Python scripts: make sure PyTorch is importable
(re-running the script with Debian's /usr/bin/python3 when the python3 on PATH
has no torch) and import torch_models from the shared reference directory."""
import os
import sys

SYSTEM_PYTHON = '/usr/bin/python3'
HERE = os.path.dirname(os.path.abspath(__file__))


def ensure_torch(prog):
    """Returns when `import torch` works; otherwise re-executes the running
    script with /usr/bin/python3, or exits with a message if that is not it."""
    try:
        import torch  # noqa: F401
        return
    except ImportError:
        pass
    if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) \
            and os.path.exists(SYSTEM_PYTHON):
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    sys.exit('%s: PyTorch not found; run scripts/setup.sh --bench and use %s'
             % (prog, SYSTEM_PYTHON))


def import_torch_models(prog, reference=None):
    """Imports torch_models from `reference`, $ATTNC_REFERENCE or
    ../shared/reference relative to the repository (never a copy)."""
    for d in (reference, os.environ.get('ATTNC_REFERENCE'),
              os.path.join(HERE, '..', '..', 'shared', 'reference')):
        if d and os.path.exists(os.path.join(d, 'torch_models.py')):
            sys.path.insert(0, os.path.abspath(d))
            import torch_models
            return torch_models
    sys.exit('%s: torch_models.py not found (set ATTNC_REFERENCE or --reference)' % prog)
