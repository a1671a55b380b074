"""What runs on Workers: the model builder, the DP trainer (Opacus) and DP statistics (OpenDP).

`spec`, `contracts` (the typed payloads and reports between the Node and a Worker, the error codes, the one
list of losses, optimizers and statistics) and `states` (the job state machine) are torch-free: the SDK and
the Node's API import them. `builder`, `training`, `statistics` and `tasks` import torch or OpenDP and are
imported only where they are used.
"""
