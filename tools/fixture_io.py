"""Writing exported programs as test fixtures, shared by the export scripts.

A fixture folder holds model.pt2, input_K.npy (user inputs, in order) and
output_K.npy (torch's outputs). The op suite and the zoo write each program
in both export forms, DIR/default and DIR/core, with DIR/meta.json.
"""
import json
import os

import numpy as np
import torch


def save(directory, ep, inputs, outputs):
    os.makedirs(directory, exist_ok=True)
    torch.export.save(ep, os.path.join(directory, "model.pt2"))
    for k, t in enumerate(inputs):
        np.save(os.path.join(directory, f"input_{k}.npy"), t.numpy())
    for k, t in enumerate(outputs):
        t = t.detach()
        if t.dtype == torch.bfloat16:
            raise ValueError("bfloat16 outputs cannot be stored as .npy; convert them in the program")
        np.save(os.path.join(directory, f"output_{k}.npy"), t.numpy())


def targets(ep):
    """The aten ops a program calls, as `aten.<op>.<overload>`."""
    return sorted({str(n.target).replace("aten::", "aten.") for n in ep.graph.nodes if n.op == "call_function"})


def save_both_forms(directory, ep, inputs, outputs, meta):
    """The default export and its run_decompositions() form, with `meta`
    plus each form's targets in meta.json."""
    meta = dict(meta, targets={})
    for form, program in [("default", ep), ("core", ep.run_decompositions())]:
        save(os.path.join(directory, form), program, inputs, outputs)
        meta["targets"][form] = targets(program)
    with open(os.path.join(directory, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
