"""The command line, ``funnelkit`` (and ``python -m funnelkit``): :mod:`.main` parses the options and
prints what the library returns; it holds no maths, no training and no reading of run folders."""
