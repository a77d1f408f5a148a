"""Compare xorlab's replay with the notebook's own code, executed verbatim from ``xor_notebook.txt``.

    .venv/bin/python experiments/notebook_replay/compare.py

The notebook's ``class Net`` cell is cut out of the text and ``exec``-ed unchanged; its training loop is
re-typed without the print. Prints how far xorlab's numbers are from the notebook's, step by step.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from xorlab import TrainConfig, train

HERE = Path(__file__).resolve().parent
REPLAY = TrainConfig(lr=0.1, max_steps=1000, seed=1337, init="notebook", rng="legacy", rng_skip=144)


def notebook_net_class() -> type:
    """The notebook's ``Net``, from its own source text."""
    text = (HERE / "xor_notebook.txt").read_text()
    source = re.search(r"^class Net:\n.*?(?=^In \[\d+\]:)", text, re.MULTILINE | re.DOTALL).group(0)
    namespace = {"np": np}
    exec(source, namespace)  # the point: run the notebook's code unchanged
    return namespace["Net"]


def notebook_run(net_cls: type) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Cells 60, 81, 82, 83: seed the global stream, build 12 throw-away nets (the re-run cell), train the 13th."""
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(1337)  # noqa: NPY002
    for _ in range(12):
        net_cls()
    model = net_cls()
    np.random.set_state(state)  # noqa: NPY002
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([[0], [1], [1], [0]])
    losses = []
    for _ in range(1000):
        model(x, y)
        model.backward(x, y)
        model.update(lr=0.1)
        losses.append(model.loss)
    preds, _ = model(x)
    params = {k: getattr(model, k) for k in ("w1", "b1", "w2", "b2")}
    return np.array(losses), preds[:, 0], params


def main() -> None:
    nb_losses, nb_preds, nb_params = notebook_run(notebook_net_class())
    res = train(REPLAY)
    diff = np.abs(res.losses - nb_losses)
    same_3f = sum(f"{a:.3f}" == f"{b:.3f}" for a, b in zip(res.losses, nb_losses, strict=True))
    print(f"per-step loss, max |xorlab - notebook|: {diff.max():.3g} (at step {diff.argmax()})")
    print(f"per-step loss, bit-identical steps:      {(res.losses == nb_losses).sum()} / 1000")
    print(f"per-step loss, same at .3f:              {same_3f} / 1000")
    print(f"predictions xorlab:   {np.array2string(res.predictions, precision=8)}")
    print(f"predictions notebook: {np.array2string(nb_preds, precision=8)}")
    print(f"predictions, max |diff|: {np.abs(res.predictions - nb_preds).max():.3g}")
    print(f"final params, max |diff|: {max(np.abs(res.params[k] - nb_params[k]).max() for k in nb_params):.3g}")
    print(f"status {res.status}, steps_to_solve {res.steps_to_solve}, final loss {res.final_loss:.6f}")


if __name__ == "__main__":
    main()
