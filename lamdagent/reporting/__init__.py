"""The final report of a study: test and out-of-distribution scores, the paper's tables, figures."""
