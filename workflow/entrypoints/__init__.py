"""The edges: command line, web (pages and JSON API), run, demo."""
