"""Reports: Markdown, CSV and PNG from a results store and the ground truth (``zenbench report``).

Reports read; they never run a proxy. ``reports.render.render_report`` writes one; ``reports.published``
holds the published NAS-Bench-201 correlations printed beside ours.
"""
