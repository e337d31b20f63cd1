"""The ``greenflame`` command line: one entry point whose verbs are a public contract.

:mod:`.main` parses and maps errors to exit statuses; each verb is a module of its own that adds
its parser (``register``) and runs it. A verb module imports only the standard library (and
:mod:`greenflame.analyzer.errors`) when it is loaded, and what it needs when it runs, so that
``greenflame run`` works with the agent alone installed.
"""
