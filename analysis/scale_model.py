"""Model-size scaling (the paper's Table 3): replay the pipelines at the given ranks (the paper used
Top-50/80/90/100-style ranks) with the base model swapped for a bigger one, then print the table
and write a CSV. Offline, `builtin:tiny-llama-large` is a ~6x larger sibling of the demo's base.

    python analysis/scale_model.py --study demo --ranks 1,2 --base-model builtin:tiny-llama-large
"""

from lamdagent.cli.scaling import main

if __name__ == "__main__":
    raise SystemExit(main("model", doc=__doc__))
