"""The asynchronous distributed runtime: the learner process, actor processes, and the run."""
