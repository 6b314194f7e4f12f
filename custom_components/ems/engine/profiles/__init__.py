"""Device profiles: register maps kept as YAML data (one file per device family, in this
folder or the user's `ems_profiles`), validated when they load (`loader`), and SunSpec model
chains made into profiles from the SunSpec Alliance's model definitions (`sunspec`).
"""
