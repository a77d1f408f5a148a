"""Reports: figures (matplotlib/seaborn, frames in, ``Figure`` out), Markdown/HTML pages, the report builder and
the two-store comparison page.
"""
