"""PNG figures: filters (``filters``), training curves and rho_hat histograms (``curves``),
sweep heatmaps (``heatmaps``), a sweep's L0-FVU frontier (``frontier``), all drawn on bare Agg
figures (``canvas``); ``figures`` holds the sets a run and a sweep draw into their
directories."""

from saejax.viz.canvas import DPI, ONE_AXES_MARGINS
from saejax.viz.curves import (
    curve_scale,
    curve_series,
    rho_hat_bins,
    save_curves,
    save_firing_histogram,
    save_penalties,
    save_rho_hat_histogram,
)
from saejax.viz.filters import (
    MONTAGE_SIDE,
    filter_grid_image,
    montage_subset,
    save_filter_grid,
    save_filters,
    tile_filters,
)
from saejax.viz.frontier import (
    MAX_LABELLED,
    frontier_points,
    member_label,
    pareto_front,
    save_frontier,
)
from saejax.viz.heatmaps import (
    MAX_ANNOTATED_SIDE,
    cell_edges,
    cell_spread,
    heatmap_arrays,
    heatmap_panel,
    save_heatmaps,
)

__all__ = [
    "DPI", "MAX_ANNOTATED_SIDE", "MAX_LABELLED", "MONTAGE_SIDE", "ONE_AXES_MARGINS", "cell_edges",
    "cell_spread", "curve_scale", "curve_series", "filter_grid_image", "frontier_points",
    "heatmap_arrays", "heatmap_panel", "member_label", "montage_subset", "pareto_front",
    "rho_hat_bins", "save_curves", "save_filter_grid", "save_filters", "save_firing_histogram",
    "save_frontier", "save_heatmaps", "save_penalties", "save_rho_hat_histogram",
    "tile_filters",
]
