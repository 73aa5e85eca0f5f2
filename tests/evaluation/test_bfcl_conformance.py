"""Conformance with BFCL's AST checker, without bfcl-eval's dependencies: candidates generated from
BFCL's ground truth by analysis/bfcl_conformance.py (correct answers in every output format and
perturbations of each kind) must get the verdict BFCL's rules give, and fixed candidates must get
the verdict bfcl-eval 2026.3.23's own checker gave (measured with that script in its venv)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from lamdagent.evaluation.function_calls import bfcl_rows, check_calls, function_call_match, function_calls

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "analysis"))
import bfcl_conformance  # noqa: E402

# Every kind the generator must keep producing (the classes where our old matcher and BFCL differed
# among them: int/float, standardised strings, dict arguments, required arguments, several lines,
# JSON "parameters" and arguments as a JSON string).
KINDS = {
    "correct", "correct_with_optional_args", "python_without_brackets", "python_in_code_fence", "python_with_comments",
    "json_single_object", "int_given_as_float", "float_given_as_int", "int_as_arithmetic", "string_case_changed",
    "string_with_bfcl_punctuation", "string_with_other_punctuation", "string_wrong_value", "missing_required_arg",
    "missing_optional_arg", "missing_arg_the_answer_needs", "extra_unknown_arg",
    "wrong_function_name", "other_function_of_the_entry", "parallel_reversed", "parallel_shuffled",
    "parallel_call_missing", "dict_keys_reordered", "dict_key_missing", "dict_string_value_case_changed",
    "list_reversed", "list_as_python_tuple", "list_strings_case_changed", "int_wrong_value", "bool_flipped",
}
RENDERINGS = set(bfcl_conformance.RENDERINGS)


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict]]:
    return {category: bfcl_rows(category) for category in bfcl_conformance.CATEGORIES}


@pytest.fixture(scope="module")
def golds(rows) -> dict[str, str]:
    return {row["id"]: bfcl_conformance.gold_of(row) for rs in rows.values() for row in rs}


def test_generated_candidates_get_the_verdicts_of_bfcls_rules(rows, golds):
    # every other entry of each category: about 21,000 candidates, a few seconds
    sample = {category: rs[::2] for category, rs in rows.items()}
    candidates = bfcl_conformance.candidates(sample)
    assert {c.kind for c in candidates} >= KINDS
    assert {c.rendering for c in candidates if c.kind == "correct"} == RENDERINGS
    wrong = Counter()
    examples = {}
    for candidate in candidates:
        if candidate.expected is None:
            continue
        if bfcl_conformance.ours(candidate, golds[candidate.entry_id]) != candidate.expected:
            wrong[candidate.kind] += 1
            examples.setdefault(candidate.kind, candidate)
    assert not wrong, f"verdicts against BFCL's rules: {dict(wrong)}; e.g. {list(examples.values())[:3]}"
    decided = sum(c.expected is not None for c in candidates)
    assert decided > 0.99 * len(candidates)


def test_every_reference_call_passes_the_checker(rows):
    for rs in rows.values():
        for row in rs:
            functions, truth = json.loads(row["functions"]), row["ground_truth"]
            calls = [{c["name"]: c["arguments"]} for c in json.loads(row["reference_calls"])]
            assert check_calls(functions, calls, truth)["valid"], row["id"]


# (entry, kind, candidate, bfcl-eval's verdict): one candidate of each kind, and every candidate on
# which BFCL's rules alone do not decide (its JSON-format decoder cutting lists of dicts short, its
# greedy matching of parallel calls, lists whose order a ground truth allows either way).
MEASURED = [
    ('simple_python_156', 'bool_as_json_literal_in_python',
     "[\n    crime_record.get_record(\n        case_number='CA123456',\n        county='San Diego',\n        details=true\n    )\n]", False),
    ('multiple_69', 'bool_flipped',
     '[{"name": "five_factor_model.analyse", "parameters": {"talkative": true, "nervous": true, "artistic_interests": false, "'
     'lazy": true, "forgiving": false}}]', False),
    ('parallel_35', 'bool_given_as_int',
     "[ancient_empires.get_religion_info(empire_name='Mauryan Empire', include_influences=True), ancient_empires.get_religion_"
     "info(empire_name='Persian Empire', include_influences=1)]", False),
    ('simple_python_97', 'call_duplicated', '[math.factorial(number=5), math.factorial(number=5)]', False),
    ('multiple_66', 'correct',
     '[{"name": "traffic_estimate", "arguments": "{\\"start_location\\": \\"Las Vegas\\", \\"end_location\\": \\"Los Angeles\\", \\"tim'
     'e_period\\": \\"weekend\\"}"}]', True),
    ('parallel_85', 'correct_with_optional_args',
     '[calculate_final_speed(initial_speed=0, time=10, gravity=-9.81), calculate_final_speed(initial_speed=5, time=7, gravity='
     '-9.81)]', True),
    ('simple_python_94', 'dict_given_as_string',
     '[{"name": "update_user_info", "arguments": {"user_id": 43523, "update_info": "{\\"name\\": \\"John Doe\\", \\"email\\": \\"john'
     'doe@email.com\\"}"}}]', False),
    ('multiple_8', 'dict_int_value_wrong',
     '[{"name": "realestate.find_properties", "arguments": {"location": "SD", "propertyType": "villa", "bedrooms": 3, "budget"'
     ': {"min": 300001, "max": 400000}}}]', False),
    ('simple_python_94', 'dict_key_extra',
     "[\n    update_user_info(\n        user_id=43523,\n        update_info={'name': 'John Doe', 'email': 'johndoe@email.com', 'u"
     "nknown_key': 1}\n    )\n]", False),
    ('simple_python_94', 'dict_key_missing',
     '[{"name": "update_user_info", "arguments": {"user_id": 43523, "update_info": {"email": "johndoe@email.com"}}}]', False),
    ('multiple_8', 'dict_keys_reordered',
     '[{"name": "realestate.find_properties", "arguments": "{\\"location\\": \\"SD\\", \\"propertyType\\": \\"villa\\", \\"bedrooms\\": '
     '3, \\"budget\\": {\\"max\\": 400000, \\"min\\": 300000}}"}]', True),
    ('simple_python_337', 'dict_list_value_case_changed',
     '[{"name": "poker_game_winner", "arguments": "{\\"players\\": [\\"Alex\\", \\"Sam\\", \\"Robert\\", \\"Steve\\"], \\"cards\\": {\\"Ale'
     'x\\": [\\"a OF SPADES\\", \\"k OF SPADES\\"], \\"Sam\\": [\\"2 of diamonds\\", \\"3 of clubs\\"], \\"Robert\\": [\\"Q of hearts\\", \\"1'
     '0 of hearts\\"], \\"Steve\\": [\\"4 of spades\\", \\"5 of spades\\"]}}"}]', False),
    ('simple_python_94', 'dict_string_value_case_changed',
     "[\n    update_user_info(\n        user_id=43523,\n        update_info={'name': 'jOHN dOE', 'email': 'johndoe@email.com'}\n  "
     '  )\n]', True),
    ('multiple_66', 'empty_call_list', '[]', False),
    ('parallel_66', 'empty_output', '', False),
    ('simple_python_133', 'extra_unknown_arg',
     '[{"name": "finance.predict_future_value", "arguments": "{\\"present_value\\": 5000, \\"annual_interest_rate\\": 0.05, \\"comp'
     'ounding_periods_per_year\\": 12, \\"time_years\\": 3, \\"unknown_arg\\": \\"x\\"}"}]', False),
    ('multiple_102', 'float_given_as_float',
     '[{"name": "calculate_displacement", "arguments": "{\\"initial_velocity\\": 10, \\"time\\": 5, \\"acceleration\\": 9.8}"}]', True),
    ('parallel_4', 'float_given_as_int',
     '[\n  {\n    "function": "calculate_bmi",\n    "parameters": {\n      "height": 6,\n      "weight": 80\n    }\n  },\n  {\n    "fun'
     'ction": "calculate_bmi",\n    "parameters": {\n      "height": 5.6,\n      "weight": 60\n    }\n  }\n]', True),
    ('simple_python_118', 'float_given_as_string',
     "[\n    stats.t_test(\n        array_1=[10, 15, 12, 14, 11],\n        array_2=[18, 16, 17, 20, 22],\n        alpha='0.05'\n   "
     ' )\n]', False),
    ('simple_python_82', 'float_list_item_as_int', '[{"function": "calculate_average", "parameters": {"numbers": [12, 15, 18, 20, 21, 26, 30]}}]', False),
    ('parallel_102', 'float_wrong_value',
     '[\n    calc_absolute_pressure(\n        gauge_pressure=2.5\n    ),\n    calc_absolute_pressure(\n        gauge_pressure=3.0,\n'
     '        atm_pressure=0.85\n    )\n]', False),
    ('simple_python_165', 'function_name_underscored',
     '[{"name": "civil_cases_retrieve", "arguments": "{\\"year\\": 2020, \\"crime_type\\": \\"theft\\", \\"location\\": \\"Los Angeles\\'
     '"}"}]', False),
    ('multiple_43', 'int_as_arithmetic', "[biological.calc_energy(mols=2 + 3, substance='C6H12O6')]", True),
    ('parallel_64', 'int_given_as_float',
     "[solve_quadratic(a=2, b=5, c=3), solve_quadratic(a=1, b=-3, c=2, root_type='real'), solve_quadratic(a=4, b=-7, c=3.0), s"
     "olve_quadratic(a=1, b=2, c=1, root_type='real')]", False),
    ('simple_python_90', 'int_given_as_string',
     "[\n    employee.fetch_data(\n        company_name='ABC Ltd.',\n        employee_id='345',\n        data_field=['Personal Inf"
     "o', 'Job History']\n    )\n]", False),
    ('multiple_44', 'int_with_unary_plus', "[calculate.weight_in_space(weight_earth_kg=+70, planet='Mars')]", False),
    ('parallel_66', 'int_wrong_value',
     '[\n    geometry.area_circle(\n        radius=6\n    ),\n    geometry.area_circle(\n        radius=10\n    ),\n    geometry.area'
     '_circle(\n        radius=15\n    )\n]', False),
    ('simple_python_132', 'json_arguments_string_truncated',
     '[{"name": "calculate_return_on_equity", "arguments": "{\\"net_income\\": 2000000, \\"shareholder_equity\\": 10000000, \\"divi'
     'dends_paid\\": 200000"}]', False),
    ('multiple_66', 'json_bfcl_after_prose',
     'Calls:\n[{"function": "traffic_estimate", "parameters": {"start_location": "Las Vegas", "end_location": "Los Angeles", "t'
     'ime_period": "weekend"}}]\nDone.', True),
    ('simple_python_199', 'json_single_object', '{"name": "environmental_data.air_quality_index", "arguments": {"location": "San Jose", "days": 3}}', True),
    ('simple_python_133', 'json_single_quoted',
     "[{'name': 'finance.predict_future_value', 'arguments': {'present_value': 5000, 'annual_interest_rate': 0.05, 'compoundin"
     "g_periods_per_year': 12, 'time_years': 3}}]", False),
    ('multiple_80', 'list_as_python_tuple', "[music_shop.find_nearby(location='Nashville, TN', services=('Violin Lessons',), instruments=['Guitars'])]", False),
    ('parallel_41', 'list_item_missing',
     "[find_music_instrument_store(location='San Francisco, CA', instruments=['Yamaha Acoustic Guitar', 'Kawai Piano']), find_"
     "music_instrument_store(location='Chicago, IL', instruments=['Yamaha Acoustic Guitar'])]", False),
    ('simple_python_96', 'list_of_dicts_one_missing',
     '[{"function": "database.query", "parameters": {"table": "user", "conditions": [{"field": "age", "operation": ">", "value'
     '": "25"}]}}]', False),
    ('multiple_119', 'list_of_dicts_value_case_changed',
     '[{"name": "database.query", "arguments": {"table": "user", "conditions": [{"field": "AGE", "operation": ">", "value": "2'
     '5"}, {"field": "job", "operation": "=", "value": "engineer"}]}}]', True),
    ('parallel_54', 'list_reversed',
     "[whole_foods.order(location='downtown', items=['chicken Caesar salad', 'pepperoni pizza'], size='large'), whole_foods.or"
     "der(location='uptown', items=['pepperoni pizza', 'chicken Caesar salad'], size='large')]", True),
    ('simple_python_206', 'list_strings_case_changed',
     "[\n    parks.find_nearby(\n        location='London',\n        amenities=['tENNIS cOURT']\n    )\n]", True),
    ('multiple_92', 'missing_arg_the_answer_needs', '[{"name": "walmart.vegan_products", "arguments": "{\\"location\\": \\"Denver, CO\\"}"}]', False),
    ('parallel_96', 'missing_optional_arg',
     '[electromagnetic_force(charge1=5, charge2=10, distance=2), electromagnetic_force(charge1=5, charge2=10, distance=2, medi'
     'um_permittivity=5e-12)]', True),
    ('simple_python_133', 'missing_required_arg',
     '[finance.predict_future_value(annual_interest_rate=0.05, compounding_periods_per_year=12, time_years=3)]', False),
    ('multiple_66', 'other_function_of_the_entry',
     '[{"function": "calculate_distance", "parameters": {"start_location": "Las Vegas", "end_location": "Los Angeles", "time_p'
     'eriod": "weekend"}}]', False),
    ('parallel_54', 'parallel_call_missing',
     '[{"name": "whole_foods.order", "parameters": {"location": "downtown", "items": ["pepperoni pizza", "chicken Caesar salad'
     '"], "size": "large"}}]', False),
    ('parallel_76', 'parallel_reversed', '[math.gcd(num1=81, num2=27), math.gcd(num1=45, num2=60)]', True),
    ('parallel_76', 'parallel_shuffled', '[math.gcd(num1=81, num2=27), math.gcd(num1=45, num2=60)]', True),
    ('parallel_66', 'prose_only', 'I cannot call a function for this request.', False),
    ('simple_python_133', 'python_after_prose',
     'Here are the calls: [finance.predict_future_value(present_value=5000, annual_interest_rate=0.05, compounding_periods_per'
     '_year=12, time_years=3)]', False),
    ('multiple_66', 'python_in_code_fence',
     "```\n[\n    traffic_estimate(\n        start_location='Las Vegas',\n        end_location='Los Angeles',\n        time_period="
     "'weekend'\n    )\n]\n```", True),
    ('parallel_64', 'python_in_tagged_code_fence',
     "```python\n[solve_quadratic(a=2, b=5, c=3), solve_quadratic(a=1, b=-3, c=2, root_type='real'), solve_quadratic(a=4, b=-7,"
     " c=3), solve_quadratic(a=1, b=2, c=1, root_type='real')]\n```", False),
    ('simple_python_133', 'python_positional_args', '[finance.predict_future_value(5000, 0.05, 12, 3)]', False),
    ('multiple_66', 'python_then_prose',
     "[traffic_estimate(start_location='Las Vegas', end_location='Los Angeles', time_period='weekend')]\nI hope this helps.", False),
    ('parallel_61', 'python_with_comments',
     '[  # the calls\n    math.hypot(\n        x=3,\n        y=4\n    ),\n    math.hypot(\n        x=6,\n        y=8\n    ),\n    math.'
     'hypot(\n        x=9,\n        y=12,\n        z=15\n    )\n]', True),
    ('simple_python_133', 'python_without_brackets',
     'finance.predict_future_value(present_value=5000, annual_interest_rate=0.05, compounding_periods_per_year=12, time_years='
     '3)', True),
    ('multiple_73', 'string_as_bare_name', '[\n    religion.get_origin(\n        religion=Buddhism\n    )\n]', True),
    ('parallel_38', 'string_as_concatenation',
     "[calc_distance(start_loc='New York', end_loc='Washington DC', shortest_route=True), calc_distance(start_loc='Los Angeles"
     "', end_loc='San ' + 'Francisco', shortest_route=True)]", True),
    ('simple_python_196', 'string_case_changed',
     '[{"name": "air_quality", "arguments": "{\\"location\\": \\"lONDON\\", \\"date\\": \\"08-16-2022\\"}"}]', True),
    ('multiple_76', 'string_given_as_call', "[sculpture.create_custom(item=lookup(name='horse'), material='Bronze')]", False),
    ('parallel_35', 'string_spaces_as_underscores',
     "[ancient_empires.get_religion_info(empire_name='Mauryan_Empire', include_influences=True), ancient_empires.get_religion_"
     "info(empire_name='Persian Empire', include_influences=True)]", True),
    ('simple_python_205', 'string_spaces_removed',
     '[{"function": "get_traffic_info", "parameters": {"start_location": "Boston", "end_location": "NewYork"}}]', True),
    ('multiple_75', 'string_with_bfcl_punctuation', '[{"name": "paint_color.trends", "parameters": {"room": "living room.,-/*^_ "}}]', True),
    ('parallel_47', 'string_with_other_punctuation',
     "[get_team_ranking(team='Barcelona!?', league='UEFA Champions League'), get_team_ranking(team='Manchester United', league"
     "='La Liga')]", False),
    ('simple_python_197', 'string_wrong_value', '[{"function": "get_air_quality_index", "parameters": {"location": "San Diego", "time": "12pmzq"}}]', False),
    ('multiple_66', 'wrong_function_name',
     '[{"name": "traffic_estimate_v2", "parameters": {"start_location": "Las Vegas", "end_location": "Los Angeles", "time_peri'
     'od": "weekend"}}]', False),
    ('simple_python_96', 'correct',
     '[{"function": "database.query", "parameters": {"table": "user", "conditions": [{"field": "age", "operation": ">", "value'
     '": "25"}, {"field": "job", "operation": "=", "value": "engineer"}]}}]', False),
    ('simple_python_96', 'json_bfcl_after_prose',
     'Calls:\n[{"function": "database.query", "parameters": {"table": "user", "conditions": [{"field": "age", "operation": ">",'
     ' "value": "25"}, {"field": "job", "operation": "=", "value": "engineer"}]}}]\nDone.', False),
    ('simple_python_96', 'list_reversed',
     "[database.query(table='user', conditions=[{'field': 'job', 'operation': '=', 'value': 'engineer'}, {'field': 'age', 'ope"
     "ration': '>', 'value': '25'}])]", False),
    ('simple_python_96', 'list_of_dicts_value_case_changed',
     '[{"function": "database.query", "parameters": {"table": "user", "conditions": [{"field": "AGE", "operation": ">", "value'
     '": "25"}, {"field": "job", "operation": "=", "value": "engineer"}]}}]', False),
    ('simple_python_238', 'int_wrong_value', "[us_history.get_president(event='American Civil War', year=1862)]", True),
    ('multiple_119', 'correct',
     '[{"function": "database.query", "parameters": {"table": "user", "conditions": [{"field": "age", "operation": ">", "value'
     '": "25"}, {"field": "job", "operation": "=", "value": "engineer"}]}}]', False),
    ('multiple_119', 'json_bfcl_after_prose',
     'Calls:\n[{"function": "database.query", "parameters": {"table": "user", "conditions": [{"field": "age", "operation": ">",'
     ' "value": "25"}, {"field": "job", "operation": "=", "value": "engineer"}]}}]\nDone.', False),
    ('multiple_119', 'list_reversed',
     "[\n    database.query(\n        table='user',\n        conditions=[{'field': 'job', 'operation': '=', 'value': 'engineer'},"
     " {'field': 'age', 'operation': '>', 'value': '25'}]\n    )\n]", False),
    ('parallel_178', 'parallel_reversed',
     '[\n  {\n    "name": "get_stock_price",\n    "parameters": {\n      "company_name": "Apple",\n      "date": "2022-02-01"\n    }'
     '\n  },\n  {\n    "name": "get_stock_price",\n    "parameters": {\n      "company_name": "Apple",\n      "date": "2022-01-01"\n '
     '   }\n  },\n  {\n    "name": "get_stock_price",\n    "parameters": {\n      "company_name": "Microsoft",\n      "date": "2022-'
     '02-01"\n    }\n  },\n  {\n    "name": "get_stock_price",\n    "parameters": {\n      "company_name": "Microsoft",\n      "date"'
     ': "2022-01-01"\n    }\n  }\n]', False),
]


@pytest.mark.parametrize("entry_id, kind, text, valid", MEASURED, ids=[f"{e}-{k}" for e, k, _, _ in MEASURED])
def test_verdicts_measured_with_bfcl_eval(golds, entry_id, kind, text, valid):
    assert function_call_match(function_calls(text), golds[entry_id]) == float(valid)
