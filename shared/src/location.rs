use serde::{Deserialize, Serialize};

use crate::{FieldError, geometry};

/// A WGS84 position. Construct with [`Coordinates::parse`] so latitude and longitude are in range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
}

impl Coordinates {
    pub fn parse(latitude: f64, longitude: f64) -> Result<Self, FieldError> {
        if !latitude.is_finite() || !(-90.0..=90.0).contains(&latitude) {
            return Err(FieldError::new("latitude", format!("latitude must be between -90 and 90, got {latitude}")));
        }
        if !longitude.is_finite() || !(-180.0..=180.0).contains(&longitude) {
            return Err(FieldError::new(
                "longitude",
                format!("longitude must be between -180 and 180, got {longitude}"),
            ));
        }
        Ok(Self { latitude, longitude })
    }

    /// Great-circle (haversine) distance in metres: what "left the visit's geofence" is measured with
    /// ([`geometry::distance_m`]).
    pub fn distance_m(&self, other: &Coordinates) -> f64 {
        geometry::distance_m(*self, *other)
    }
}

/// How far from the visit point the worker may be before they count as having left (metres).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeofenceRadius(u32);

impl GeofenceRadius {
    pub const MIN_M: u32 = 25;
    pub const MAX_M: u32 = 5_000;
    pub const DEFAULT_M: u32 = 150;

    pub fn parse(metres: i64) -> Result<Self, FieldError> {
        if !(i64::from(Self::MIN_M)..=i64::from(Self::MAX_M)).contains(&metres) {
            return Err(FieldError::new(
                "geofence_radius_m",
                format!("the geofence radius must be between {} and {} metres, got {metres}", Self::MIN_M, Self::MAX_M),
            ));
        }
        Ok(Self(metres as u32))
    }

    pub fn metres(self) -> u32 {
        self.0
    }
}

impl Default for GeofenceRadius {
    fn default() -> Self {
        Self(Self::DEFAULT_M)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_out_of_range_and_non_finite() {
        assert_eq!(Coordinates::parse(90.1, 0.0).unwrap_err().field, "latitude");
        assert_eq!(Coordinates::parse(f64::NAN, 0.0).unwrap_err().field, "latitude");
        assert_eq!(Coordinates::parse(0.0, -180.5).unwrap_err().field, "longitude");
        assert_eq!(Coordinates::parse(0.0, f64::INFINITY).unwrap_err().field, "longitude");
        assert!(Coordinates::parse(-90.0, 180.0).is_ok());
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // One degree of latitude is about 111.2 km everywhere.
        let a = Coordinates::parse(51.0, -1.0).unwrap();
        let b = Coordinates::parse(52.0, -1.0).unwrap();
        assert!((a.distance_m(&b) - 111_195.0).abs() < 50.0, "{}", a.distance_m(&b));
    }

    #[test]
    fn geofence_bounds() {
        assert!(GeofenceRadius::parse(24).is_err());
        assert!(GeofenceRadius::parse(5_001).is_err());
        assert_eq!(GeofenceRadius::parse(100).unwrap().metres(), 100);
    }

    proptest! {
        #[test]
        fn distance_is_symmetric_and_non_negative(a in -90.0f64..=90.0, b in -180.0f64..=180.0, c in -90.0f64..=90.0, d in -180.0f64..=180.0) {
            let p = Coordinates::parse(a, b).unwrap();
            let q = Coordinates::parse(c, d).unwrap();
            let pq = p.distance_m(&q);
            prop_assert!((0.0..=20_040_000.0).contains(&pq));
            prop_assert!((pq - q.distance_m(&p)).abs() < 1e-6);
        }

        #[test]
        fn parse_accepts_exactly_the_valid_range(lat in any::<f64>(), lon in any::<f64>()) {
            let ok = lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0;
            prop_assert_eq!(Coordinates::parse(lat, lon).is_ok(), ok);
        }

        /// A refusal names the coordinate that is wrong (the latitude first when both are).
        #[test]
        fn refusals_name_the_wrong_coordinate(lat in any::<f64>(), lon in any::<f64>()) {
            let lat_ok = lat.is_finite() && lat.abs() <= 90.0;
            let lon_ok = lon.is_finite() && lon.abs() <= 180.0;
            match Coordinates::parse(lat, lon) {
                Ok(c) => {
                    prop_assert!(lat_ok && lon_ok);
                    prop_assert_eq!((c.latitude.to_bits(), c.longitude.to_bits()), (lat.to_bits(), lon.to_bits()));
                    let json = serde_json::to_string(&c).unwrap();
                    prop_assert_eq!(serde_json::from_str::<Coordinates>(&json).unwrap(), c);
                }
                Err(e) => prop_assert_eq!(e.field, if lat_ok { "longitude" } else { "latitude" }),
            }
        }

        #[test]
        fn geofence_accepts_exactly_its_range_and_keeps_the_value(m in prop_oneof![any::<i64>(), 0i64..6_000]) {
            match GeofenceRadius::parse(m) {
                Ok(r) => {
                    prop_assert!((25..=5_000).contains(&m));
                    prop_assert_eq!(i64::from(r.metres()), m);
                    prop_assert_eq!(GeofenceRadius::parse(i64::from(r.metres())).unwrap(), r);
                }
                Err(e) => {
                    prop_assert!(!(25..=5_000).contains(&m));
                    prop_assert_eq!(e.field, "geofence_radius_m");
                }
            }
        }
    }
}
