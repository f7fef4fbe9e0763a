use dioxus::prelude::*;
use homeward_shared::Coordinates;
use homeward_shared::geometry::{self, Coord, TILE_PX};

/// One point on the map: a numbered marker matching the list's number, with its status in words too.
#[derive(Debug, Clone, PartialEq)]
pub struct MapPoint {
    pub label: String,
    pub latitude: f64,
    pub longitude: f64,
    /// `active`, `overdue`, `alarm`, or `gap` (the signal map).
    pub status: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapTile {
    pub url: String,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapMarker {
    pub x: f64,
    pub y: f64,
    pub point: MapPoint,
}

/// What the map draws: tiles from the tile server and markers, in the SVG's own pixels. Markers are
/// drawn whether or not any tile loads.
#[derive(Debug, Clone, PartialEq)]
pub struct MapModel {
    pub width: f64,
    pub height: f64,
    pub zoom: u32,
    pub tiles: Vec<MapTile>,
    pub markers: Vec<MapMarker>,
}

const TILE: f64 = TILE_PX;
/// What tile requests say of the page: its origin only, never its path (OpenStreetMap's usage policy
/// needs a referrer; the rest of the app sends none).
pub const TILE_REFERRER_POLICY: &str = "strict-origin-when-cross-origin";
pub const WIDTH: f64 = 340.0;
pub const HEIGHT: f64 = 240.0;

/// Web Mercator world pixels at `zoom` ([`geometry::project`]).
fn project(point: &MapPoint, zoom: u32) -> Coord {
    geometry::project(Coordinates { latitude: point.latitude, longitude: point.longitude }, zoom)
}

/// Fit every point in the view at the closest zoom (3 to 16), centred on them.
pub fn map_model(tile_url: &str, points: &[MapPoint]) -> Option<MapModel> {
    if points.is_empty() {
        return None;
    }
    let margin = 24.0;
    let zoom = (3..=16u32)
        .rev()
        .find(|&z| {
            geometry::bounds(points.iter().map(|p| project(p, z)))
                .is_some_and(|b| b.width() <= WIDTH - 2.0 * margin && b.height() <= HEIGHT - 2.0 * margin)
        })
        .unwrap_or(3);
    let xy: Vec<Coord> = points.iter().map(|p| project(p, zoom)).collect();
    let (min, max) = geometry::bounds(xy.iter().copied()).map(|b| (b.min(), b.max()))?;
    let left = (min.x + max.x) / 2.0 - WIDTH / 2.0;
    let top = (min.y + max.y) / 2.0 - HEIGHT / 2.0;
    let count = 1i64 << zoom;
    let mut tiles = Vec::new();
    let (first_x, last_x) = ((left / TILE).floor() as i64, ((left + WIDTH) / TILE).floor() as i64);
    let (first_y, last_y) = ((top / TILE).floor() as i64, ((top + HEIGHT) / TILE).floor() as i64);
    for ty in first_y.max(0)..=last_y.min(count - 1) {
        for tx in first_x..=last_x {
            let wrapped = tx.rem_euclid(count);
            let url = tile_url
                .replace("{z}", &zoom.to_string())
                .replace("{x}", &wrapped.to_string())
                .replace("{y}", &ty.to_string());
            tiles.push(MapTile { url, x: tx as f64 * TILE - left, y: ty as f64 * TILE - top });
        }
    }
    let markers = points
        .iter()
        .zip(xy)
        .map(|(point, Coord { x, y })| MapMarker { x: x - left, y: y - top, point: point.clone() })
        .collect();
    Some(MapModel { width: WIDTH, height: HEIGHT, zoom, tiles, markers })
}

/// A map of points over tiles, drawn as SVG (no script, no styles the page's policy would refuse). The
/// list beside it carries the same numbers, so the map is never needed alone.
#[component]
pub fn BoardMap(model: MapModel, attribution: String) -> Element {
    let view_box = format!("0 0 {} {}", model.width, model.height);
    rsx! {
        figure { class: "board-map", "data-testid": "board-map", "data-zoom": "{model.zoom}",
            svg {
                view_box: "{view_box}",
                width: "100%",
                role: "img",
                "aria-label": "Map of the last known positions; the numbers match the list",
                rect { class: "map-ground", x: "0", y: "0", width: "{model.width}", height: "{model.height}" }
                // Each tile is an HTML `img` for its `referrerpolicy`, which SVG's `image` lacks in most
                // browsers: the page's own policy is `no-referrer`, and OpenStreetMap's tile policy refuses
                // requests that say nothing of the site they are for. Its origin is all it is told.
                for tile in model.tiles.iter() {
                    foreignObject {
                        x: "{tile.x}",
                        y: "{tile.y}",
                        width: "256",
                        height: "256",
                        img {
                            class: "map-tile",
                            "data-testid": "map-tile",
                            src: "{tile.url}",
                            width: "256",
                            height: "256",
                            alt: "",
                            referrerpolicy: TILE_REFERRER_POLICY,
                        }
                    }
                }
                for marker in model.markers.iter() {
                    g {
                        class: "map-marker marker-{marker.point.status}",
                        "data-testid": "map-marker",
                        "data-status": "{marker.point.status}",
                        title { "{marker.point.title}" }
                        circle { cx: "{marker.x}", cy: "{marker.y}", r: "11" }
                        text {
                            x: "{marker.x}",
                            y: "{marker.y + 4.0}",
                            text_anchor: "middle",
                            "{marker.point.label}"
                        }
                    }
                }
            }
            figcaption { class: "field-hint", "{attribution}" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(label: &str, latitude: f64, longitude: f64) -> MapPoint {
        MapPoint { label: label.into(), latitude, longitude, status: "active".into(), title: label.into() }
    }

    #[test]
    fn the_map_fits_every_point_and_asks_for_the_tiles_under_them() {
        let points = [point("1", 51.4545, -2.5879), point("2", 51.4600, -2.6000)];
        let model = map_model("https://tiles.test/{z}/{x}/{y}.png", &points).expect("a map");
        assert!((3..=16).contains(&model.zoom));
        for marker in &model.markers {
            assert!((0.0..=WIDTH).contains(&marker.x) && (0.0..=HEIGHT).contains(&marker.y), "{marker:?}");
        }
        assert!(!model.tiles.is_empty());
        assert!(model.tiles.iter().all(|t| t.url.starts_with(&format!("https://tiles.test/{}/", model.zoom))));
        // Every marker sits on some tile.
        for marker in &model.markers {
            assert!(
                model
                    .tiles
                    .iter()
                    .any(|t| marker.x >= t.x && marker.x < t.x + 256.0 && marker.y >= t.y && marker.y < t.y + 256.0)
            );
        }
        assert_eq!(map_model("x", &[]), None);
    }

    #[test]
    fn every_tile_tells_the_tile_server_the_sites_origin() {
        let points = [point("1", 51.4545, -2.5879), point("2", 51.4600, -2.6000)];
        let model = map_model("https://tile.openstreetmap.org/{z}/{x}/{y}.png", &points).expect("a map");
        let tiles = model.tiles.len();
        assert!(tiles > 0);
        let mut dom =
            VirtualDom::new_with_props(BoardMap, BoardMapProps { model, attribution: "© OpenStreetMap".into() });
        dom.rebuild_in_place();
        let html = dioxus_ssr::render(&dom);
        let requests: Vec<&str> = html.split("https://tile.openstreetmap.org/").skip(1).collect();
        assert_eq!(requests.len(), tiles, "one request per tile: {html}");
        let tile_elements: Vec<&str> =
            html.split("<img").skip(1).map(|e| &e[..e.find('>').unwrap_or(e.len())]).collect();
        assert_eq!(tile_elements.len(), tiles, "every tile is an img: {html}");
        for element in tile_elements {
            assert!(element.contains(r#"data-testid="map-tile""#), "{element}");
            assert!(element.contains(r#"src="https://tile.openstreetmap.org/"#), "{element}");
            assert!(element.contains(r#"referrerpolicy="strict-origin-when-cross-origin""#), "{element}");
        }
        assert!(!html.contains("<image"), "no SVG image, which cannot set its referrer policy everywhere: {html}");
    }

    #[test]
    fn a_single_point_is_shown_close_up() {
        let model = map_model("{z}/{x}/{y}", &[point("1", 51.5, -0.12)]).expect("a map");
        assert_eq!(model.zoom, 16);
        assert!((model.markers[0].x - WIDTH / 2.0).abs() < 1.0);
    }
}
