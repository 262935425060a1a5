"""Scale-out machinery: what lets several processes or machines run one stage together, kept
apart so that the science (:mod:`isic_tracking.train.search`, the stages) reads without it.

Modules, one concept each:

- :mod:`.storage`: Optuna storages from a URL (a journal file for the processes of one host, a
  database for several machines), with a clear message when one cannot be reached;
- :mod:`.reconnect`: an RDB storage whose calls ride out a database restart;
- :mod:`.worker_loop`: the loop every search worker runs, and the study's shared trial budget
  (a claim lock per host keeps it exact);
- :mod:`.liveness`: which process owns a trial, and whether it is still alive;
- :mod:`.recovery`: trials of dead workers, failed and re-queued with the same parameters;
- :mod:`.scratch`: trial scratch folders named after their owner, swept once it is gone;
- :mod:`.parent_election`: one parent run when several workers start the same stage at the
  same moment (elected through MLflow tags, the one module here that imports MLflow).
"""
