"""Engines: train N runs at once. ``simulate`` (numpy, the reference) and its compiled twin (``kernel``), starting
weights drawn in bulk, and the pipeline that overlaps training with preparing and recording.
"""
