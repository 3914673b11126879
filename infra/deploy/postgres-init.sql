-- Run once by the postgres image when its volume is empty: the Prefect server keeps its own state in a
-- database of its own, beside Posventa's (POSTGRES_DB).
CREATE DATABASE prefect;
