"""``compare``: one table across training runs, with bar charts (the runner :mod:`.runner`;
the ``main`` pipeline's report uses its ``compare_runs`` and ``mean_std_table`` too)."""
