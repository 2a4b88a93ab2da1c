"""PNG figures: filters (``filters``), training curves and rho_hat histograms (``curves``),
sweep heatmaps (``heatmaps``), all drawn on bare Agg figures (``canvas``); ``figures`` holds the
sets a run and a sweep draw into their directories."""

from saejax.viz.canvas import DPI, ONE_AXES_MARGINS
from saejax.viz.curves import (
    curve_scale,
    curve_series,
    rho_hat_bins,
    save_curves,
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
from saejax.viz.heatmaps import (
    MAX_ANNOTATED_SIDE,
    cell_edges,
    cell_spread,
    heatmap_arrays,
    heatmap_panel,
    save_heatmaps,
)

__all__ = [
    "DPI", "MAX_ANNOTATED_SIDE", "MONTAGE_SIDE", "ONE_AXES_MARGINS", "cell_edges", "cell_spread",
    "curve_scale", "curve_series", "filter_grid_image", "heatmap_arrays", "heatmap_panel",
    "montage_subset", "rho_hat_bins", "save_curves", "save_filter_grid", "save_filters",
    "save_heatmaps", "save_penalties", "save_rho_hat_histogram", "tile_filters",
]
