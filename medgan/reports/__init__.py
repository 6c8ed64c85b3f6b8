"""Self-contained HTML reports (figures embedded, no network, no JavaScript) for a model file
and an export folder.
"""
