"""CAP 1.2 documents as alerting systems really write them, built around a given time.

Each has what hotline has no field for (headline, event, areaDesc, polygons, several areas,
a second language) and none of hotline's own parameters but ``hotline:object``; the Update
and Cancel name the alert before them by the CAP sender's own ``sender,identifier,sent``.
"""

from __future__ import annotations

from hotline.cap.times import format_cap_time

SENDER = "alerts@pasienis.example.lt"
NS = "urn:oasis:names:tc:emergency:cap:1.2"


def _head(identifier: str, sent_ms: int, msg_type: str, extra: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="{NS}">'
        f"<identifier>{identifier}</identifier><sender>{SENDER}</sender>"
        f"<sent>{format_cap_time(sent_ms)}</sent><status>Exercise</status>"
        f"<msgType>{msg_type}</msgType><scope>Restricted</scope>"
        f"<restriction>Border guard duty officers</restriction>{extra}"
    )


def _times(now_ms: int) -> str:
    onset = format_cap_time(now_ms - 20_000)
    expires = format_cap_time(now_ms + 1_800_000)
    return f"<onset>{onset}</onset><expires>{expires}</expires>"


def circle_two_languages(now_ms: int) -> bytes:
    """A drone over the border, in Lithuanian and English, as a circle."""
    codes = ("<urgency>Immediate</urgency><severity>Extreme</severity>"
             "<certainty>Observed</certainty>")
    area = ("<area><areaDesc>Šalčininkai district, near Dieveniškės</areaDesc>"
            "<circle>54.1912,25.6307 3.5</circle><altitude>1200</altitude></area>")
    return (
        _head("VSAT-2025-0412", now_ms, "Alert")
        + "<info><language>lt-LT</language><category>Security</category>"
        f"<event>Bepilotis orlaivis</event><responseType>Monitor</responseType>{codes}"
        f"{_times(now_ms)}<senderName>VSAT Vilniaus pasienio rinktinė</senderName>"
        "<headline>Bepilotis orlaivis prie sienos</headline>"
        "<description>Radaras seka bepilotį orlaivį, skrendantį į vakarus.</description>"
        "<parameter><valueName>hotline:object</valueName><value>uav</value></parameter>"
        f"{area}</info>"
        "<info><language>en-GB</language><category>Security</category>"
        f"<event>Unmanned aircraft</event><responseType>Monitor</responseType>{codes}"
        f"{_times(now_ms)}<headline>Drone near the border</headline>"
        "<description>Radar tracks a drone flying west.</description>"
        f"{area}</info></alert>"
    ).encode()


def polygon(now_ms: int, identifier: str = "VSAT-2025-0413") -> bytes:
    """A balloon swarm reported over an area drawn as a polygon, altitude band in feet."""
    return (
        _head(identifier, now_ms, "Alert")
        + "<info><language>en</language><category>Security</category>"
        "<event>Balloon incursion</event><responseType>Prepare</responseType>"
        "<urgency>Expected</urgency><severity>Moderate</severity><certainty>Likely</certainty>"
        f"{_times(now_ms)}<headline>Balloons drifting north-west</headline>"
        "<parameter><valueName>hotline:object</valueName><value>balloon</value></parameter>"
        "<parameter><valueName>EAS-ORG</valueName><value>CIV</value></parameter>"
        "<area><areaDesc>Varėna district forest sector 7</areaDesc>"
        "<polygon>54.0100,24.4200 54.0500,24.5100 53.9800,24.5600 53.9500,24.4700 "
        "54.0100,24.4200</polygon><altitude>3000</altitude><ceiling>9000</ceiling>"
        "</area></info></alert>"
    ).encode()


def several_areas(now_ms: int) -> bytes:
    """One drone threatening two sectors: a polygon, a circle, and an area named by geocode."""
    return (
        _head("VSAT-2025-0414", now_ms, "Alert")
        + "<info><category>Security</category><event>Drone warning</event>"
        "<urgency>Immediate</urgency><severity>Severe</severity><certainty>Possible</certainty>"
        f"{_times(now_ms)}<headline>Drone between two checkpoints</headline>"
        "<description>Seen by two posts; heading unknown.</description>"
        "<parameter><valueName>hotline:object</valueName><value>uav</value></parameter>"
        "<area><areaDesc>Medininkai checkpoint</areaDesc>"
        "<polygon>54.5400,25.6300 54.5600,25.6700 54.5300,25.7000 54.5400,25.6300</polygon>"
        "</area>"
        "<area><areaDesc>Šumskas checkpoint</areaDesc>"
        "<circle>54.6300,25.8000 2</circle><circle>54.6400,25.8200 1</circle></area>"
        "<area><areaDesc>Vilnius district municipality</areaDesc>"
        "<geocode><valueName>NUTS3</valueName><value>LT011</value></geocode></area>"
        "</info></alert>"
    ).encode()


def reference(identifier: str, sent_ms: int) -> str:
    """The ``sender,identifier,sent`` entry naming one of these documents."""
    return f"{SENDER},{identifier},{format_cap_time(sent_ms)}"


def update(now_ms: int, references: str) -> bytes:
    """The drone of :func:`circle_two_languages`, now over another place."""
    return (
        _head("VSAT-2025-0412-U1", now_ms, "Update", f"<references>{references}</references>")
        + "<info><language>lt-LT</language><category>Security</category>"
        "<event>Bepilotis orlaivis</event><responseType>Avoid</responseType>"
        "<urgency>Immediate</urgency><severity>Extreme</severity>"
        f"<certainty>Observed</certainty>{_times(now_ms)}"
        "<headline>Bepilotis orlaivis kirto sieną</headline>"
        "<description>Orlaivis 5 km į vakarus nuo sienos.</description>"
        "<parameter><valueName>hotline:object</valueName><value>uav</value></parameter>"
        "<area><areaDesc>Eišiškės</areaDesc><circle>54.1700,25.0000 2.5</circle></area>"
        "</info></alert>"
    ).encode()


def cancel(now_ms: int, references: str) -> bytes:
    """All clear for the drone: it landed."""
    return (
        _head("VSAT-2025-0412-C1", now_ms, "Cancel", f"<references>{references}</references>")
        + "<info><language>en-GB</language><category>Security</category>"
        "<event>Unmanned aircraft</event><responseType>AllClear</responseType>"
        "<urgency>Past</urgency><severity>Minor</severity><certainty>Observed</certainty>"
        "<headline>All clear: the drone landed</headline>"
        "<parameter><valueName>hotline:reason</valueName><value>landed</value></parameter>"
        "<area><areaDesc>Eišiškės</areaDesc><circle>54.1700,25.0000 2.5</circle></area>"
        "</info></alert>"
    ).encode()
