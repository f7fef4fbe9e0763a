//! Geometry on the `geo` crate, for the phone and the server alike, so both agree: the distance a
//! geofence is measured with, whether a position is inside one, the signal map's grid cells, and the
//! board map's Web Mercator projection and bounds.

use geo::{BoundingRect, Distance, Haversine, MultiPoint, Point};
pub use geo::{Coord, Rect};

use crate::Coordinates;

impl From<Coordinates> for Point {
    fn from(c: Coordinates) -> Self {
        Point::new(c.longitude, c.latitude)
    }
}

/// Great-circle (haversine) distance in metres, on a sphere of the Earth's mean radius (GRS80's,
/// 6,371,008.8 m, as `geo` uses).
pub fn distance_m(a: Coordinates, b: Coordinates) -> f64 {
    Haversine.distance(Point::from(a), Point::from(b))
}

/// Whether `point` is at most `radius_m` metres from `centre` (on the circle is inside).
pub fn within(point: Coordinates, centre: Coordinates, radius_m: f64) -> bool {
    distance_m(centre, point) <= radius_m
}

/// The signal map's grid has always taken a degree of latitude as this many metres (a degree at the
/// equator on WGS84's ellipsoid); changing it would move every cell.
const GRID_METRES_PER_DEGREE: f64 = 111_320.0;

/// A cell of a grid of squares about `cell_m` metres a side: rows of equal latitude, counted north from
/// the equator, and columns as wide in metres at their row's centre, counted east from the meridian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    pub row: i64,
    pub col: i64,
}

fn row_height(cell_m: f64) -> f64 {
    cell_m / GRID_METRES_PER_DEGREE
}

/// A row's cells' width in degrees of longitude.
fn col_width(row: i64, cell_m: f64) -> f64 {
    let centre = ((row as f64 + 0.5) * row_height(cell_m)).to_radians();
    // Near the poles a cell would be degrees wide; cap it so the arithmetic stays sane.
    cell_m / (GRID_METRES_PER_DEGREE * centre.cos().max(0.01))
}

/// The cell of the `cell_m` grid that `point` falls in.
pub fn cell_of(point: Coordinates, cell_m: f64) -> Cell {
    let row = (point.latitude / row_height(cell_m)).floor() as i64;
    let col = (point.longitude / col_width(row, cell_m)).floor() as i64;
    Cell { row, col }
}

/// The centre of a cell of the `cell_m` grid.
pub fn cell_centre(cell: Cell, cell_m: f64) -> Coordinates {
    Coordinates {
        latitude: (cell.row as f64 + 0.5) * row_height(cell_m),
        longitude: (cell.col as f64 + 0.5) * col_width(cell.row, cell_m),
    }
}

/// A map tile's side in pixels.
pub const TILE_PX: f64 = 256.0;
/// Web Mercator's last latitude: the map is drawn up to it, and a point beyond it at its edge.
pub const MERCATOR_MAX_LATITUDE: f64 = 85.05;

/// Web Mercator (the tile servers' projection): `point`'s pixel in the world map at `zoom`, which is
/// `TILE_PX` × 2^zoom pixels square, x east from 180° W and y south from the top.
pub fn project(point: Coordinates, zoom: u32) -> Coord {
    let scale = TILE_PX * f64::from(1u32 << zoom);
    let lat = point.latitude.clamp(-MERCATOR_MAX_LATITUDE, MERCATOR_MAX_LATITUDE).to_radians();
    let x = (point.longitude + 180.0) / 360.0 * scale;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * scale;
    Coord { x, y }
}

/// The smallest rectangle holding every one of `coords` (`None` for none).
pub fn bounds(coords: impl IntoIterator<Item = Coord>) -> Option<Rect> {
    coords.into_iter().map(Point::from).collect::<MultiPoint>().bounding_rect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(latitude: f64, longitude: f64) -> Coordinates {
        Coordinates::parse(latitude, longitude).unwrap()
    }

    #[test]
    fn distance_is_the_haversine_on_the_mean_radius() {
        // One degree of a great circle on a sphere of 6,371,008.8 m.
        let degree = 6_371_008.8 * std::f64::consts::PI / 180.0;
        assert!((distance_m(at(0.0, 0.0), at(1.0, 0.0)) - degree).abs() < 1e-6);
        assert!((distance_m(at(0.0, 10.0), at(0.0, 11.0)) - degree).abs() < 1e-6);
        // London to Paris: about 343.5 km.
        let d = distance_m(at(51.5074, -0.1278), at(48.8566, 2.3522));
        assert!((d - 343_500.0).abs() < 1_000.0, "{d}");
    }

    #[test]
    fn within_counts_the_circle_itself_as_inside() {
        let centre = at(51.5, -0.12);
        let point = at(51.501, -0.12);
        let d = distance_m(centre, point);
        assert!(within(point, centre, d));
        assert!(within(point, centre, d + 1.0));
        assert!(!within(point, centre, d - 0.01));
    }

    #[test]
    fn positions_a_few_metres_apart_share_a_cell_and_far_ones_do_not() {
        let a = at(51.50010, -0.12010);
        assert_eq!(cell_of(at(51.50012, -0.12013), 200.0), cell_of(a, 200.0));
        assert_ne!(cell_of(at(51.51, -0.12), 200.0), cell_of(a, 200.0));
        let centre = cell_centre(cell_of(a, 200.0), 200.0);
        assert_eq!(cell_of(centre, 200.0), cell_of(a, 200.0));
        assert!(distance_m(a, centre) < 200.0);
    }

    #[test]
    fn cells_count_from_the_equator_and_the_meridian() {
        assert_eq!(cell_of(at(0.0, 0.0), 200.0), Cell { row: 0, col: 0 });
        assert_eq!(cell_of(at(-0.0001, -0.0001), 200.0), Cell { row: -1, col: -1 });
        // A row is 200 / 111,320 degrees tall.
        assert_eq!(cell_of(at(1.0, 0.0), 200.0).row, (111_320.0f64 / 200.0).floor() as i64);
    }

    #[test]
    fn projection_puts_the_world_on_tiles() {
        assert_eq!(project(at(0.0, -180.0), 0), Coord { x: 0.0, y: 128.0 });
        let centre = project(at(0.0, 0.0), 1);
        assert!((centre.x - 256.0).abs() < 1e-9 && (centre.y - 256.0).abs() < 1e-9, "{centre:?}");
        // The top edge, and a pole drawn there too.
        assert!(project(at(MERCATOR_MAX_LATITUDE, 0.0), 0).y.abs() < 0.1);
        assert_eq!(project(at(90.0, 0.0), 4), project(at(MERCATOR_MAX_LATITUDE, 0.0), 4));
        // Each zoom level doubles the pixels.
        let (p, q) = (project(at(51.45, -2.59), 10), project(at(51.45, -2.59), 11));
        assert!((q.x - 2.0 * p.x).abs() < 1e-6 && (q.y - 2.0 * p.y).abs() < 1e-6);
    }

    #[test]
    fn bounds_hold_every_point() {
        assert_eq!(bounds([]), None);
        let b = bounds([Coord { x: 3.0, y: -1.0 }, Coord { x: -2.0, y: 4.0 }, Coord { x: 0.5, y: 0.5 }]).unwrap();
        assert_eq!((b.min(), b.max()), (Coord { x: -2.0, y: -1.0 }, Coord { x: 3.0, y: 4.0 }));
        let one = bounds([Coord { x: 7.0, y: 8.0 }]).unwrap();
        assert_eq!((one.width(), one.height()), (0.0, 0.0));
    }

    fn coordinates() -> impl Strategy<Value = Coordinates> {
        (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| at(lat, lon))
    }

    proptest! {
        #[test]
        fn distance_is_symmetric_zero_to_itself_and_at_most_half_way_round(p in coordinates(), q in coordinates()) {
            prop_assert_eq!(distance_m(p, p), 0.0);
            prop_assert_eq!(distance_m(p, q), distance_m(q, p));
            let half_way_round = 6_371_008.8 * std::f64::consts::PI;
            prop_assert!((0.0..=half_way_round + 1e-6).contains(&distance_m(p, q)));
            prop_assert_eq!(p.distance_m(&q), distance_m(p, q));
        }

        #[test]
        fn within_is_a_distance_of_at_most_the_radius(p in coordinates(), q in coordinates(), r in 0.0f64..30_000_000.0) {
            prop_assert_eq!(within(p, q, r), distance_m(q, p) <= r);
            prop_assert!(within(p, p, 0.0));
        }

        /// Up to 80°, a cell's centre is in the cell, and a point is within a cell's diagonal of it.
        #[test]
        fn a_cell_holds_its_centre_and_its_points_are_near_it(lat in -80.0f64..=80.0, lon in -180.0f64..=180.0, cell_m in 50.0f64..2_000.0) {
            let p = at(lat, lon);
            let cell = cell_of(p, cell_m);
            let centre = cell_centre(cell, cell_m);
            prop_assert_eq!(cell_of(centre, cell_m), cell);
            prop_assert!(distance_m(p, centre) < cell_m, "{} m", distance_m(p, centre));
        }

        /// East is right and north is up, at every zoom.
        #[test]
        fn projection_is_monotone(a in coordinates(), b in coordinates(), zoom in 0u32..=20) {
            let (pa, pb) = (project(a, zoom), project(b, zoom));
            let world = TILE_PX * f64::from(1u32 << zoom);
            prop_assert!((0.0..=world).contains(&pa.x) && (-1e-6..=world + 1e-6).contains(&pa.y), "{pa:?}");
            if a.longitude < b.longitude {
                prop_assert!(pa.x <= pb.x);
            }
            let (la, lb) = (a.latitude.clamp(-85.05, 85.05), b.latitude.clamp(-85.05, 85.05));
            if la < lb {
                prop_assert!(pa.y >= pb.y, "{la} {lb}: {pa:?} {pb:?}");
            }
        }

        #[test]
        fn bounds_are_the_least_rectangle_holding_every_point(xy in prop::collection::vec((-1e6f64..1e6, -1e6f64..1e6), 1..20)) {
            let b = bounds(xy.iter().map(|&(x, y)| Coord { x, y })).unwrap();
            for &(x, y) in &xy {
                prop_assert!(b.min().x <= x && x <= b.max().x && b.min().y <= y && y <= b.max().y);
            }
            prop_assert!(xy.iter().any(|p| p.0 == b.min().x) && xy.iter().any(|p| p.0 == b.max().x));
            prop_assert!(xy.iter().any(|p| p.1 == b.min().y) && xy.iter().any(|p| p.1 == b.max().y));
        }
    }
}
