"""``/extensions``: the Cinder API extensions this service implements (Cinder's list)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.responses import json_response

# (alias, name, when Cinder added it, what it is) for what stackvol serves.
EXTENSIONS = (
    ("os-admin-actions", "AdminActions", "2012-08-25", "Enable admin actions."),
    ("os-availability-zone", "AvailabilityZones", "2013-06-27",
     "Describe Availability Zones."),
    ("capabilities", "Capabilities", "2015-08-31", "Capabilities support."),
    ("os-extended-services", "ExtendedServices", "2014-01-10", "Extended services support."),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes", "2012-06-19",
     "Extended SnapshotAttributes support."),
    ("os-hosts", "Hosts", "2011-06-29", "Admin-only host administration."),
    ("qos-specs", "Qos_specs_manage", "2013-08-02", "QoS specs support."),
    ("os-quota-class-sets", "Quota_classes", "2012-03-12", "Quota classes management support."),
    ("os-quota-sets", "Quotas", "2011-08-08", "Quota management support."),
    ("scheduler-stats", "Scheduler_stats", "2014-09-07", "Scheduler stats support."),
    ("os-services", "Services", "2012-10-28", "Services support."),
    ("os-snapshot-actions", "SnapshotActions", "2013-07-16", "Enable snapshot manager actions."),
    ("os-types-extra-specs", "TypesExtraSpecs", "2011-08-24", "Type extra specs support."),
    ("os-types-manage", "TypesManage", "2011-08-24", "Types manage support."),
    ("os-used-limits", "UsedLimits", "2013-10-03", "Provide data on limited resources that are "
                                                   "being used."),
    ("os-vol-host-attr", "VolumeHostAttribute", "2011-11-03",
     "Expose host as an attribute of a volume."),
    ("os-vol-image-meta", "VolumeImageMetadata", "2012-12-07",
     "Show image metadata associated with the volume."),
    ("os-vol-mig-status-attr", "VolumeMigStatusAttribute", "2013-08-08",
     "Expose migration_status as an attribute of a volume."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute", "2011-11-03",
     "Expose the internal project_id as an attribute of a volume."),
    ("os-volume-actions", "VolumeActions", "2012-05-31", "Enable volume actions."),
    ("os-volume-transfer", "VolumeTransfer", "2013-05-29", "Volume transfer management "
                                                           "support."),
    ("os-volume-type-access", "VolumeTypeAccess", "2014-06-26",
     "Volume type access support."),
)


async def index(request: Request) -> Response:
    return json_response({"extensions": [
        {"alias": alias, "name": name, "updated": f"{day}T00:00:00+00:00",
         "description": description, "links": []}
        for alias, name, day, description in EXTENSIONS]})


routes = [Route("/extensions", index, methods=["GET"])]
