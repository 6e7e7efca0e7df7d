"""The parts `gan_bench.train.train()` is made of, each one concern, none importing train:

    setup.py       device, backends, Hydra instantiation, how many steps a run has
    streams.py     the run's random streams (data order, latents, penalties), one per replica
    batches.py     shuffled epochs over the training set, one order per replica
    networks.py    G and D as the loop runs them: speed path, autocast, compile, EMA of G
    state.py       the whole state of a run: what a checkpoint holds, saved and restored in one place
    ticks.py       per-step numbers kept on the device, then the log tick (divergence, scalars)
    evaluation.py  metrics on fixed test latents, into metrics.jsonl and TensorBoard
    signals.py     SIGTERM/SIGINT as a request to stop at the end of the step or inside an evaluation

Every tensor has a leading replica dim K (K = 1 for a single run); see gan_bench/ensemble.py.
"""
