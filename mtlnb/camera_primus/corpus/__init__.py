"""The corpus: the real archive's layout and folds (`primus`), the synthetic incipits (`incipits`, fitted by
`incipit_stats`), their engraving and camera distortion (`engraving`, `distortion`), the whole synthetic corpus
(`synthetic`), the networks' inputs (`features`, cached by `feature_cache`) and their datasets (`datasets`)."""
