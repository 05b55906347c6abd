"""Late fusion: the five methods of Alfaro-Contreras et al. 2023 on word graphs (`methods`) and the pipeline that runs
them over a fold (`pipeline`)."""
