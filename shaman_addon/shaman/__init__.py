"""The Shaman API of a Flamenco Manager over HTTP: the client, its transport, its answers.

Nothing here knows about .blend files or submissions: it sends what it is given and turns
every failure into one of the errors in ``errors``.
"""
