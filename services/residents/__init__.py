"""Reading residents, for every service that shows one (the query API, the CLI, the console, the view relay):

* ``views`` — stored rows rendered as the view of CONTRACT §6, by person (§12);
* ``bitemporal`` — a view as it stood at a business date and as the log knew it at an instant, refolded from the
  archive;
* ``eligibility`` — a resident's facts loaded for a policy and decided (``projections.eligibility``).

The rows themselves are read by ``projections.resident.reads``; what is written is the projector's.
"""
