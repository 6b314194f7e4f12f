"""Tariffs and CO2: the models (`model`) and their checks (`validation`), the options form's
fields into those models (`options`, with the time-of-use grammar in `schedule` and the form's
error codes in `errors`), price lists that entities publish (`price_lists`), and the rate at
any quarter hour (`rates`).
"""
