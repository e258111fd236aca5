"""Starting spawned helper processes (training workers, the UMAP process) from inside a Streamlit server
without re-running its __main__ (app.py) in them."""

from __future__ import annotations

import contextlib
import sys
import threading
import types

START_LOCK = threading.Lock()


@contextlib.contextmanager
def bare_main():
    """Start a spawned worker without re-running the parent's __main__ in it.

    Under `streamlit run`, __main__ is app.py: multiprocessing would execute it in the child (pages,
    Streamlit calls, a second JobManager). The worker needs only ffnlp_core, so hide __main__ meanwhile.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
