"""When a run started to overfit, read from its evaluations: the dev loss was lowest at one evaluation and
rose afterwards. `overfitting(evals, patience)` says at which epoch that began and what early stopping with
that patience (TrainConfig.early_stopping_patience, or a suggested one) would have stopped at and kept.
No Streamlit, no torch."""

from __future__ import annotations

import numpy as np

SUGGESTED_PATIENCE = 3  # at least this many evaluations without a better dev loss (early stopping off)
RISE = 0.02  # the dev loss must end at least 2% above its lowest value to count as rising


def early_stop(dev_loss: np.ndarray, patience: int) -> tuple[int, int] | None:
    """(index where training would stop, index of the best evaluation then) for early stopping that waits
    `patience` evaluations without a lower dev loss; None when it would never stop."""
    best, waited = 0, 0
    for i in range(1, len(dev_loss)):
        if dev_loss[i] < dev_loss[best]:
            best, waited = i, 0
        else:
            waited += 1
            if waited >= patience:
                return i, best
    return None


def overfitting(evals: dict, patience: int = 0) -> dict | None:
    """The overfitting a run's evaluations show, or None (too few evaluations, or the dev loss did not rise
    at the end). `evals` has arrays step, epoch, dev_loss, dev_accuracy (RunHistory.eval_table)."""
    loss = np.asarray(evals.get("dev_loss", []), np.float64)
    if len(loss) < 4 or not np.all(np.isfinite(loss)):
        return None
    best = int(np.argmin(loss))
    if best >= len(loss) - 2 or loss[-1] < loss[best] * (1 + RISE):
        return None
    step, epoch, acc = (np.asarray(evals[k]) for k in ("step", "epoch", "dev_accuracy"))
    # Off in this run: suggest one epoch's worth of evaluations (a dev loss is noisy from one to the next).
    per_epoch = int(np.sum(epoch == epoch[0]))
    used = patience or max(SUGGESTED_PATIENCE, per_epoch)
    stop = early_stop(loss, used)
    text = (
        f"Dev loss was lowest at epoch {int(epoch[best])} (step {int(step[best]):,}: {loss[best]:.3f}, dev "
        f"accuracy {acc[best]:.3f}) and rose to {loss[-1]:.3f} by the end: the network began to overfit "
        f"around epoch {int(epoch[best])}, fitting the training comments at the expense of new ones."
    )
    if stop is not None:
        at, kept = stop
        which = "this run's" if patience else "a"
        text += (
            f" Early stopping with {which} patience of {used} evaluations would have stopped at epoch "
            f"{int(epoch[at])} (step {int(step[at]):,}) and kept the weights of epoch {int(epoch[kept])} "
            f"(dev accuracy {acc[kept]:.3f} instead of {acc[-1]:.3f})."
        )
    return {
        "best_index": best,
        "best_epoch": int(epoch[best]),
        "stop_index": None if stop is None else stop[0],
        "patience": used,
        "text": text,
    }
