"""Trainer service: turns a labelled CSV (text,label) into a classifier head.

It validates the data (columns, empty or duplicate texts, classes too small), embeds it
through the embedder, cross-validates the head and reports its scores, then stores it as a
new immutable, versioned head that the classifier service can load.
"""
