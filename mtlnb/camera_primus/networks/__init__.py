"""The networks and their training: the baseline CRNNs (`crnn`), GradSPSA's A2S network (`gradspsa_a2s`), CTC and
the gradual soft-sharing loss (`losses`), the CTC tasks and posteriors files (`ctc_tasks`) and the runs of a fold,
with the one family of functions that trains what is missing (`runs`)."""
