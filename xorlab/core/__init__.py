"""Data and math (numpy only): the XOR data, generators, the network, init schemes, outcomes, failure modes, and
``TrainConfig``, the single schema everything derives from.
"""
