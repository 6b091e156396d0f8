"""The access log (CONTRACT §11, §13): who read which resident, when and why — chained per citizen in
PostgreSQL (``database``), or first on the access-log topic for reads that never write (``topic``)."""
