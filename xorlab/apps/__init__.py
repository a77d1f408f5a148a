"""The apps: Hydra entry points and command-line tools. Nothing in the library imports this package."""
