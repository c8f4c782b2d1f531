<?php
// Fake Magento deployment config with canary secrets: none of these may ever leave the agent.
return [
    'crypt' => [
        'key' => 'CANARY-CRYPT-KEY-9b1e'
    ],
    'db' => [
        'table_prefix' => '',
        'connection' => [
            'default' => [
                'host' => 'localhost',
                'dbname' => 'magento',
                'username' => 'magento',
                'password' => 'CANARY-DB-PASSWORD-7f3a',
                'active' => '1'
            ]
        ]
    ],
    'MAGE_MODE' => 'production'
];
