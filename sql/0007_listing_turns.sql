-- Listing turns: the replicas of one bucket prefix take turns at its periodic listing.
-- Every replica used to list the whole prefix every interval; the listing is only the
-- backstop of the notifications (an object found by any replica is claimed and loaded by
-- that one), so one listing per interval across the replicas keeps the guarantee (an
-- object nobody was told of is found within one interval) at the cost of one. Each
-- replica, at its tick, takes the turn if no listing of its source began within the
-- interval (package listturn); the time is the database's, the same for every host.
SET LOCAL ROLE ecomstream_migrator;

CREATE TABLE IF NOT EXISTS ecomstream_listing_turns (
    source   text        PRIMARY KEY, -- the source's URL, s3://BUCKET/PREFIX
    began_at timestamptz NOT NULL     -- when its last listing began (clock_timestamp())
);

GRANT SELECT, INSERT, UPDATE ON ecomstream_listing_turns TO ecomstream_ingester;
