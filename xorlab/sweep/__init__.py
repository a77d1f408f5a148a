"""Sweeps: grids over ``TrainConfig`` fields, run ids and shards in bulk, options, and the runner that plans, claims,
trains and records a sweep (resuming and extending what a store already holds).
"""
