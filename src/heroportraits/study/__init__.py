"""Studies: a grid of config variants x seeds x a budget, trained, evaluated and tabulated.

spec     a study as data (studies/*.toml or any TOML/JSON file), checked field by field
runner   `python -m heroportraits study SPEC`: trains and evaluates every run, resumable and
         shardable, and writes artifacts_gan/studies/<name>/
tables   results.csv (one row per run), summary.csv (mean +- std over seeds, difference to the
         baseline and the verdict rule), and reading them back for notebooks
"""
