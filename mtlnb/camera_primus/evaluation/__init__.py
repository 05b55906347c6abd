"""Evaluation: the thesis's nine OMR/A2S scenarios (`scenarios`), both cross-validation schemes and paired tests
(`crossval`), the paired bootstrap behind every interval (`bootstrap`), the tables and findings of notebook 05
(`tables`) and the thesis's own published tables (`thesis_tables`), whether two runs' findings agree within their
intervals (`agreement`), the sim-to-real evaluation of a trained run on real samples (`sim2real`), and the thesis's
future work as experiments (`beyond`, `beyond_grid`)."""
