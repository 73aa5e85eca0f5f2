"""Data-size scaling (the paper's Figure 7): replay the study's top pipelines with every training set
scaled (x2, x4, x6 in the paper), then print the table and write a CSV and the curves.

    python analysis/scale_data.py --study demo --ranks 1,2 --factors 2,4
"""

from lamdagent.cli.scaling import main

if __name__ == "__main__":
    raise SystemExit(main("data", doc=__doc__))
