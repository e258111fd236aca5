"""The UI helpers every page uses, as one name space (`from pages import _common as ui`); each lives in
the module of its role:

- `pages/_server.py`: what one server process shares: `manager()` (the job manager), `workspaces()`,
  `devices()`, and the start-up work after the first page (`page_running`, `after_first_page`, `warm_up`);
- `pages/_datasets.py`: the data sets of the whole server: `builtin_table`, `load_default_data`,
  `shared_dataset`, `dataset_key`;
- `pages/_state.py`: the user's workspace and the URL: `workspace()`, `restore_from_url`, `current_run`,
  `leave_legacy_pages_mode`;
- `pages/_browser.py`: what runs in the browser: `keep_url` (the ids back into the address bar), and the
  other pages' element code loaded while the first page idles;
- `pages/_live.py`: views that refresh while a run trains: `poll_seconds`, `live_fragment`, `rerun_when`, `status_line`,
  `sidebar_status`, `POLL_SECONDS`;
- `pages/_helpers.py`: `page_link`, `need_data`, `data_ready`, `data_on_its_way`, `synced`, `chart` (every figure, projector-sized in the
  classroom view), `fmt_count`.

Pages stay thin: widgets, layout and calls into ffnlp_core. Nothing here imports torch, scikit-learn or
pandas at import time: a server's first page draws without them.
"""

from pages._browser import keep_url
from pages._datasets import builtin_table, dataset_key, load_default_data, shared_dataset
from pages._helpers import (
    chart,
    data_on_its_way,
    data_ready,
    error,
    fmt_count,
    need_data,
    page_link,
    plain,
    synced,
)
from pages._live import POLL_SECONDS, live_fragment, poll_seconds, rerun_when, sidebar_status, status_line
from pages._server import after_first_page, devices, manager, page_running, warm_up, workspaces
from pages._state import current_run, leave_legacy_pages_mode, restore_from_url, workspace

__all__ = [
    "POLL_SECONDS",
    "after_first_page",
    "builtin_table",
    "chart",
    "error",
    "current_run",
    "data_on_its_way",
    "data_ready",
    "dataset_key",
    "devices",
    "fmt_count",
    "keep_url",
    "leave_legacy_pages_mode",
    "live_fragment",
    "load_default_data",
    "manager",
    "need_data",
    "page_link",
    "plain",
    "page_running",
    "poll_seconds",
    "rerun_when",
    "restore_from_url",
    "shared_dataset",
    "sidebar_status",
    "status_line",
    "synced",
    "warm_up",
    "workspace",
    "workspaces",
]
