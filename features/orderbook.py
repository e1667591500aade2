"""Order-book features for the LOB competition (B): spreads, mid and micro-price, imbalances,
pressure, trade intensity and imbalance, mid-price changes.

The column layout is read from the column names, never assumed by count: ``p*`` are prices
and ``v*`` volumes, the first half of each being the bid side and the second half the ask
side (level 0 = best, as in the competition's schema); ``dp*`` / ``dv*`` are trade prices and
volumes. Ratios whose denominator is exactly 0 (an empty side, no trades) are 0.

Sums over levels use ``numpy.add.reduce`` / ``cumsum`` on the last axis in both forms (never
BLAS dot products, whose summation order depends on the shapes), so streaming and batch agree
bit for bit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .base import Transform
from .numerics import lagged

DEFAULT_MID_CHANGE_PERIODS = (1, 5, 20)


def _numbered(names: Sequence[str], prefix: str) -> list[int]:
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    found = [(int(match.group(1)), index) for index, name in enumerate(names) if (match := pattern.match(name))]
    return [index for _, index in sorted(found)]


@dataclass(frozen=True)
class OrderBookLayout:
    """Input column indices of each part of the book, best level first."""

    bid_prices: tuple[int, ...]
    ask_prices: tuple[int, ...]
    bid_volumes: tuple[int, ...]
    ask_volumes: tuple[int, ...]
    trade_prices: tuple[int, ...]
    trade_volumes: tuple[int, ...]

    @property
    def levels(self) -> int:
        return len(self.bid_prices)

    @property
    def trades(self) -> int:
        return len(self.trade_prices)

    @classmethod
    def from_names(
        cls,
        names: Sequence[str],
        price_prefix: str = "p",
        volume_prefix: str = "v",
        trade_price_prefix: str = "dp",
        trade_volume_prefix: str = "dv",
    ) -> OrderBookLayout:
        """Read the layout from column names such as p0..p11, v0..v11, dp0..dp3, dv0..dv3."""
        prices = _numbered(names, price_prefix)
        volumes = _numbered(names, volume_prefix)
        trade_prices = _numbered(names, trade_price_prefix)
        trade_volumes = _numbered(names, trade_volume_prefix)
        if not prices or len(prices) % 2 or len(prices) != len(volumes):
            raise ValueError(
                f"order book: need an even, equal number of {price_prefix}* price and {volume_prefix}* volume "
                f"columns (bids then asks), found {len(prices)} and {len(volumes)} in {list(names)}"
            )
        if not trade_prices or len(trade_prices) != len(trade_volumes):
            raise ValueError(
                f"order book: need equal, non-zero numbers of {trade_price_prefix}* and {trade_volume_prefix}* "
                f"trade columns, found {len(trade_prices)} and {len(trade_volumes)}"
            )
        half = len(prices) // 2
        return cls(
            bid_prices=tuple(prices[:half]),
            ask_prices=tuple(prices[half:]),
            bid_volumes=tuple(volumes[:half]),
            ask_volumes=tuple(volumes[half:]),
            trade_prices=tuple(trade_prices),
            trade_volumes=tuple(trade_volumes),
        )

    @property
    def gather_order(self) -> np.ndarray:
        """Input indices in the order the transform works on: bid, ask prices; bid, ask volumes; trades."""
        return np.array(
            self.bid_prices + self.ask_prices + self.bid_volumes + self.ask_volumes
            + self.trade_prices + self.trade_volumes,
            dtype=np.intp,
        )


class OrderBookFeatures(Transform):
    """Derived order-book features of one row, plus mid-price changes over a few periods.

    Outputs, in order: spread per level; depth imbalance per level; cumulative depth
    imbalance per level; pressure imbalance; bid pressure; ask pressure; mid; micro-price;
    trade imbalance; trade volume; trade count; mid change per period.
    Pressure is depth weighted by 1 / (level + 1). Trade imbalance is the trade volume signed
    by whether each trade printed above (+) or below (-) mid, over the total trade volume;
    trade volume and count measure trade intensity.
    """

    kind = "order_book"

    def __init__(self, mid_change_periods: Sequence[int] = DEFAULT_MID_CHANGE_PERIODS, prefix: str = "ob_") -> None:
        super().__init__()
        self.mid_change_periods = tuple(int(period) for period in mid_change_periods)
        if any(period < 1 for period in self.mid_change_periods):
            raise ValueError(f"OrderBookFeatures: mid-change periods must be positive, got {list(mid_change_periods)}")
        self.prefix = str(prefix)
        self.lags = self.mid_change_periods

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        self.layout = OrderBookLayout.from_names(input_names)
        levels = self.layout.levels
        self._order = self.layout.gather_order
        self._weights = 1.0 / np.arange(1, levels + 1, dtype=np.float64)
        p = self.prefix
        names = [f"{p}spread{level}" for level in range(levels)]
        names += [f"{p}imbalance{level}" for level in range(levels)]
        names += [f"{p}cum_imbalance{level}" for level in range(levels)]
        names += [f"{p}pressure_imbalance", f"{p}bid_pressure", f"{p}ask_pressure"]
        names += [f"{p}mid", f"{p}microprice", f"{p}trade_imbalance", f"{p}trade_volume", f"{p}trade_count"]
        names += [f"{p}mid_change{period}" for period in self.mid_change_periods]
        return names

    def _parts(self, book: np.ndarray) -> tuple[np.ndarray, ...]:
        levels, trades = self.layout.levels, self.layout.trades
        edges = np.cumsum([0, levels, levels, levels, levels, trades, trades])
        return tuple(book[..., edges[i] : edges[i + 1]] for i in range(6))

    # ------------------------------------------------------------------------------ batch
    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        bid, ask, bid_volume, ask_volume, trade_price, trade_volume = self._parts(sequences[..., self._order])
        mid = (bid[..., 0] + ask[..., 0]) * 0.5
        depth = bid_volume[..., 0] + ask_volume[..., 0]
        micro = (bid[..., 0] * ask_volume[..., 0] + ask[..., 0] * bid_volume[..., 0]) / np.where(depth == 0, 1.0, depth)
        micro = np.where(depth == 0, mid, micro)
        bid_pressure = np.add.reduce(bid_volume * self._weights, axis=-1)[..., None]
        ask_pressure = np.add.reduce(ask_volume * self._weights, axis=-1)[..., None]
        bid_side = np.concatenate([bid_volume, np.cumsum(bid_volume, axis=-1), bid_pressure], axis=-1)
        ask_side = np.concatenate([ask_volume, np.cumsum(ask_volume, axis=-1), ask_pressure], axis=-1)
        denominator = bid_side + ask_side
        empty = denominator == 0
        ratio = (bid_side - ask_side) / (denominator + empty)
        ratio[empty] = 0.0
        total_trade = np.add.reduce(trade_volume, axis=-1)
        signed_trade = np.add.reduce(trade_volume * np.sign(trade_price - mid[..., None]), axis=-1)
        trade_imbalance = np.where(total_trade == 0, 0.0, signed_trade / np.where(total_trade == 0, 1.0, total_trade))
        count = np.count_nonzero(trade_volume, axis=-1).astype(np.float64)
        changes = [mid - lagged(mid[..., None], period)[..., 0] for period in self.mid_change_periods]
        scalars = np.stack([mid, micro, trade_imbalance, total_trade, count] + changes, axis=-1)
        return np.concatenate([ask - bid, ratio, bid_pressure, ask_pressure, scalars], axis=-1)

    # -------------------------------------------------------------------------- streaming
    # Layout: a (2, 2L + 1) array "sides" whose rows are [volumes | cumulative volumes |
    # pressure] for bids and asks, so every imbalance is (row 0 - row 1) / (row 0 + row 1)
    # in one pass. Scalars (mid, micro-price, trades) use Python floats: the same IEEE
    # arithmetic as numpy, without a numpy call per operation.
    def _on_bind(self) -> None:
        levels = self.layout.levels
        self._book = np.zeros(len(self._order))
        self._prices = self._book[: 2 * levels]
        self._bids = self._book[:levels]
        self._asks = self._book[levels : 2 * levels]
        self._volumes = self._book[2 * levels : 4 * levels].reshape(2, levels)
        self._volumes_flat = self._book[2 * levels : 4 * levels]
        self._sides = np.zeros((2, 2 * levels + 1))
        self._side_volumes = self._sides[:, :levels]
        self._side_cumulative = self._sides[:, levels : 2 * levels]
        self._side_pressure = self._sides[:, 2 * levels]
        self._weights2 = np.concatenate([self._weights, self._weights])
        self._weighted = np.zeros(2 * levels)
        self._weighted2 = self._weighted.reshape(2, levels)
        self._denominator = np.zeros(2 * levels + 1)
        self._empty = np.zeros(2 * levels + 1, dtype=bool)
        self._best = np.array([self.layout.bid_prices[0], self.layout.ask_prices[0]], dtype=np.intp)
        self._lagged_best = np.zeros((len(self.mid_change_periods), 2))
        self._lagged_mid = np.zeros(len(self.mid_change_periods))
        self._trade_start = 4 * levels

    def _on_out(self, out: np.ndarray) -> None:
        levels = self.layout.levels
        self._spread_out = out[:levels]
        self._ratio_out = out[levels : 3 * levels + 1]
        self._pressure_out = out[3 * levels + 1 : 3 * levels + 3]
        start = 3 * levels + 3
        self._scalar_out = out[start : start + 5]
        self._change_out = out[start + 5 :]

    def step(self, out: np.ndarray) -> None:
        if out is not self._out_seen:
            self._watch_out(out)
        book = self._current.take(self._order, out=self._book, mode="wrap")
        levels = self.layout.levels
        np.subtract(self._asks, self._bids, self._spread_out)
        sides = self._sides
        np.copyto(self._side_volumes, self._volumes)
        np.cumsum(self._volumes, axis=1, out=self._side_cumulative)
        np.multiply(self._volumes_flat, self._weights2, self._weighted)
        np.add.reduce(self._weighted2, axis=1, out=self._side_pressure)
        denominator = np.add(sides[0], sides[1], self._denominator)
        empty = np.equal(denominator, 0.0, self._empty)
        np.add(denominator, empty, denominator)
        np.subtract(sides[0], sides[1], self._ratio_out)
        np.divide(self._ratio_out, denominator, self._ratio_out)
        np.copyto(self._ratio_out, 0.0, where=empty)
        np.copyto(self._pressure_out, self._side_pressure)
        values = book.tolist()
        bid, ask = values[0], values[levels]
        bid_volume, ask_volume = values[2 * levels], values[3 * levels]
        mid = (bid + ask) * 0.5
        depth = bid_volume + ask_volume
        micro = mid if depth == 0 else (bid * ask_volume + ask * bid_volume) / depth
        trades = self.layout.trades
        start = self._trade_start
        total = signed = 0.0
        count = 0
        for price, volume in zip(values[start : start + trades], values[start + trades :]):
            gap = price - mid
            total += volume
            signed += volume * ((gap > 0) - (gap < 0))
            count += volume != 0
        self._scalar_out[:] = (mid, micro, 0.0 if total == 0 else signed / total, total, count)
        if self.mid_change_periods:
            best = self._lagged.take(self._best, axis=1, out=self._lagged_best, mode="wrap")
            lagged_mid = np.add.reduce(best, axis=1, out=self._lagged_mid)
            np.multiply(lagged_mid, 0.5, lagged_mid)
            np.subtract(mid, lagged_mid, self._change_out)
