"""GeoJSON feeds for the map: violations at their camera's position, and cameras with their status.

Violations are placed at the camera's registered position (the manifest's position when the camera has
none; left out when neither is known). The map carries no plate, so it is not audited: an officer who
clicks a point opens the violation, and that view is.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from api.models import Camera, User, Violation
from api.schemas import (
    CameraFeature,
    CameraFeatureCollection,
    CameraFeatureProperties,
    PointPublic,
    ViolationFeature,
    ViolationFeatureCollection,
    ViolationFeatureProperties,
)
from api.services.review import scope_district

log = logging.getLogger(__name__)


def violation_features(
    session: Session,
    user: User,
    *,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    status: str | None = None,
    rule: str | None = None,
    district_id: str | None = None,
    limit: int = 1000,
) -> ViolationFeatureCollection:
    """The newest `limit` violations `user` may see, as GeoJSON points.

    Raises:
        RefusedError: 403 when an officer asks for another district.
    """
    district = scope_district(user, district_id)
    lat = func.coalesce(Camera.lat, Violation.lat)
    lon = func.coalesce(Camera.lon, Violation.lon)
    conds: list[ColumnElement[bool]] = [lat.is_not(None), lon.is_not(None)]
    if district is not None:
        conds.append(Violation.district_id == district)
    if status is not None:
        conds.append(Violation.status == status)
    if rule is not None:
        conds.append(Violation.rule == rule)
    if occurred_from is not None:
        conds.append(Violation.occurred_at >= occurred_from)
    if occurred_to is not None:
        conds.append(Violation.occurred_at < occurred_to)
    rows = session.execute(
        select(
            Violation.id,
            Violation.rule,
            Violation.status,
            Violation.occurred_at,
            Violation.camera_id,
            Violation.district_id,
            Violation.vehicle_class,
            lat.label("lat"),
            lon.label("lon"),
        )
        .join(Camera, Camera.id == Violation.camera_id)
        .where(*conds)
        .order_by(Violation.occurred_at.desc(), Violation.id.desc())
        .limit(limit + 1)
    ).all()
    session.commit()
    features = [
        ViolationFeature(
            id=r.id,
            geometry=PointPublic(coordinates=(r.lon, r.lat)),
            properties=ViolationFeatureProperties(
                id=r.id,
                rule=r.rule,
                status=r.status,
                occurred_at=r.occurred_at,
                camera_id=r.camera_id,
                district_id=r.district_id,
                vehicle_class=r.vehicle_class,
            ),
        )
        for r in rows[:limit]
    ]
    return ViolationFeatureCollection(features=features, truncated=len(rows) > limit)


def camera_features(
    session: Session, user: User, *, now: datetime, stale_after_s: float, district_id: str | None = None
) -> CameraFeatureCollection:
    """Cameras `user` may see that have a position, with `online`/`stale`/`never` from `last_seen`.

    Raises:
        RefusedError: 403 when an officer asks for another district.
    """
    district = scope_district(user, district_id)
    stmt = select(Camera).where(Camera.lat.is_not(None), Camera.lon.is_not(None)).order_by(Camera.id)
    if district is not None:
        stmt = stmt.where(Camera.district_id == district)
    cameras = session.scalars(stmt).all()
    session.commit()
    fresh_since = now - timedelta(seconds=stale_after_s)
    features = []
    for c in cameras:
        assert c.lat is not None and c.lon is not None  # filtered above
        status = "never" if c.last_seen is None else "online" if c.last_seen >= fresh_since else "stale"
        features.append(
            CameraFeature(
                id=c.id,
                geometry=PointPublic(coordinates=(c.lon, c.lat)),
                properties=CameraFeatureProperties(
                    id=c.id,
                    name=c.name,
                    district_id=c.district_id,
                    last_seen=c.last_seen,
                    status=status,
                    scene_version=c.scene_version,
                ),
            )
        )
    return CameraFeatureCollection(features=features)
