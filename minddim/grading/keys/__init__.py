"""The answer key: one module per exercise, named after its notebook in ``solutions/`` (``ex03_epsilon_loss`` for
``solutions/03_epsilon_loss.py``).  Importing this package registers every question in
:data:`minddim.grading.spec.CHECKS`; each module holds, for each of its questions, the inputs it is checked on (random
and edge cases), the package's reference and the mistakes learners really make, each with its hint.
"""

from . import (ex01_forward_process, ex02_posterior_and_bound, ex03_epsilon_loss, ex04_ddim_step,  # noqa: F401
               ex05_subsequences_and_encoding, ex06_scores_and_ode, ex07_mnist, ex08_beyond_sampling, ex09_guidance)
