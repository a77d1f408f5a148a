"""Analysis: tidy frames in, statistics out (Wilson intervals, paired comparisons, Kaplan-Meier), decision
surfaces and the report's findings in words. Draws nothing.
"""
