"""The department's web console (管理控制台): HTTP only, it owns no selection data."""
