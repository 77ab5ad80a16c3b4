-- A rotated token records the token that replaced it, so that deleting it during its grace
-- window revokes the successor's whole tree (the tokens it created moved there at rotation).
ALTER TABLE auths ADD COLUMN rotated_to TEXT COLLATE "C";
